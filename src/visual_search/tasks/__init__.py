"""Tasks: one per entry script (evaluate, train, train_detector, serve). Each builds on the library and
the Pipeline and never imports another task."""
