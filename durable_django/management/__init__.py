"""Management commands: each parses its arguments and calls a library function."""
