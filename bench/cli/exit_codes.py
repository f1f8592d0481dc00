"""The exit codes every `bench` command shares: 0 done, 1 work failed, 2 bad input, 130 interrupted."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
