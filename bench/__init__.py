"""supz's benchmark: its bulk paths against stock supervisor's, side by side (`./bin/bench`)."""
