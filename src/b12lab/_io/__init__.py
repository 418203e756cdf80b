"""The ways in and out: files, long exports, the command line, the DataFrame accessor."""
