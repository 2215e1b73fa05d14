"""The paper's method and the label-noise lab's: losses (BCE, MODL eq. 2, KNNS eq. 4), the soft label
distribution of the references, the K nearest neighbour pools, efficient KNNS's memory bank, and the
registry of the lab's noisy-label losses. Tensors and arrays in, tensors and arrays out: nothing here
knows about files, runs or notebooks."""
