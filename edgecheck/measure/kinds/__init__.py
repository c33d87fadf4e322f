"""The device kinds edgecheck ships, one module each; ``measure.devices`` registers them (one line each).

A kind of your own is a module like these, registered through the ``edgecheck.devices`` entry point of
your package (README, "Adding a device kind")."""
