"""`bench view PATH [PATH2]`: browse a run or sweep folder (or compare two) in a local web page."""
