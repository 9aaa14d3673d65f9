"""A run directory: the writer the measuring phases append to, the reader the report uses."""
