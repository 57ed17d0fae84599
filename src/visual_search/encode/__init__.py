"""Image encoders: one module per model family, all behind the `Encoder` base class."""
