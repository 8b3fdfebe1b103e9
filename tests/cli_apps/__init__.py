"""Apps the command-line tests serve, and a harness that runs the command line as a subprocess."""
