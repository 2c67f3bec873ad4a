"""The ``minewatch`` command line: one small module per subcommand."""
