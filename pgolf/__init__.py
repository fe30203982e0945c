"""An ablation lab for OpenAI's Parameter Golf challenge, written as literate notebooks

Modules:

- `pgolf.export`: The artifact: quantise the trained weights, serialise them, compress them, count every byte against the 16,000,000-byte cap, and read the file back into the exact weights that are evaluated."""

__version__ = "0.1.0"
