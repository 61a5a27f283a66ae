"""Fast backends of the atom convolution (paper Eq. 5) behind ``torch.ops.acda.atom_conv2d``."""
