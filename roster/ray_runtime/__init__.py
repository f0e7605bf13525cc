"""The Ray shell: the protocol cores as async Ray actors in namespace `roster`."""
