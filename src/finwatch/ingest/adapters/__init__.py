"""One module per export format; each defines one ``Adapter`` subclass."""
