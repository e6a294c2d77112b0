"""One module per command: run() does the work and returns a model, render() shows it."""
