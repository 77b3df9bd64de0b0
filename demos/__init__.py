"""One package per tab of the gallery (`app.DEMOS` lists them in order); see docs/ARCHITECTURE.md."""
