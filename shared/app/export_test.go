package app

// RunProcess is runProcess, for the external tests: Main's run with its
// soft memory limit, without the signals and the exit.
var RunProcess = runProcess
