"""How much do image denoisers buy an MNIST classifier under noise? The benchmark library."""
