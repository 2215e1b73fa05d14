from paperkit.orchestration.cli import main

raise SystemExit(main())
