"""Each of the chain's systems' files in its own native format, written from the model's output."""
