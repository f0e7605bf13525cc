"""Events, the codec and the durable log."""
