import pytest

from paperkit.config import PROFILES, ConfigError, Profile, apply_overrides, get_profile, resolve


def test_paper_settings_are_the_defaults():
    p = Profile()
    assert (p.lambda_modl, p.gamma_knns, p.k, p.sigma) == (0.1, 0.1, 9, 1.0)
    assert (p.lr, p.betas, p.batch_size, p.epochs, p.lr_step_epochs) == (1e-3, (0.9, 0.999), 32, 10, 2)
    assert p.lr_gamma == pytest.approx(1 / 3)
    assert (p.resize, p.crop, p.target_arch) == (256, 224, "densenet121")
    assert len(p.reference_archs) == 6


@pytest.mark.parametrize("name", list(PROFILES))
def test_named_profiles_are_valid(name):
    assert get_profile(name).name == name


@pytest.mark.parametrize(
    "overrides, field, expected",
    [
        ({"lambda_modl": "0.3"}, "lambda_modl", 0.3),
        ({"lambda_modl": 1}, "lambda_modl", 1.0),
        ({"k": "5"}, "k", 5),
        ({"seeds": "0,1,2"}, "seeds", (0, 1, 2)),
        ({"seeds": [3, 4]}, "seeds", (3, 4)),
        ({"amp": "false"}, "amp", False),
        ({"reference_archs": "resnet10t,densenet121"}, "reference_archs", ("resnet10t", "densenet121")),
        ({"knns_mode": "efficient"}, "knns_mode", "efficient"),
        ({"teaching": "cleanlab,noise_lambda_grid"}, "teaching", ("cleanlab", "noise_lambda_grid")),
        ({"teaching": ""}, "teaching", ()),
        ({"noise_sweep": "0,0.5"}, "noise_sweep", (0.0, 0.5)),
        ({"missing": "skip"}, "missing", "skip"),
        ({"devices": "0,1,3"}, "devices", "0,1,3"),
        ({"workers": "0"}, "workers", 0),
    ],
)
def test_overrides_are_typed(overrides, field, expected):
    assert getattr(apply_overrides(get_profile("smoke"), overrides), field) == expected


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"lamda_modl": 0.3}, "unknown parameter 'lamda_modl'"),
        ({"k": "nine"}, "'k' must be an integer"),
        ({"k": 2.5}, "'k' must be an integer"),
        ({"lr": "fast"}, "'lr' must be a number"),
        ({"amp": "maybe"}, "'amp' must be true or false"),
        ({"knns_mode": "cheap"}, "'knns_mode' must be one of"),
        ({"crop": 999}, "crop (999) must not exceed resize"),
        ({"k": 0}, "'k' must be positive"),
        ({"name": "x"}, "cannot be overridden"),
        ({"teaching": "cleanlab,prune"}, "unknown ablation(s) prune"),
        ({"ablation_seeds": 4, "seeds": "0,1,2"}, "'ablation_seeds' must be in 0..3"),
        ({"oof_folds": 1}, "'oof_folds' must be at least 2"),
        ({"noise_sweep": "-1"}, "'noise_sweep' needs levels >= 0"),
        ({"missing": "keep"}, "'missing' must be one of error, skip"),
        ({"workers": -1}, "'workers' must be 0"),
        ({"devices": "0,gpu1"}, "'devices' must be all or distinct GPU indices"),
        ({"devices": 1}, "'devices' must be a string"),
    ],
)
def test_bad_overrides_name_the_parameter(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve("smoke", overrides)


def test_unknown_profile_lists_choices():
    with pytest.raises(ConfigError, match="unknown profile 'tpu'.*smoke.*gpu"):
        get_profile("tpu")
