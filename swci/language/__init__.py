"""The SWCI language: grammar loading, command objects, parsing, syntax lines and expectations."""
