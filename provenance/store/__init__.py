"""The incremental store: its layout on disk (``layout``), what a run must redo (``plan``), the run (``run``)."""
