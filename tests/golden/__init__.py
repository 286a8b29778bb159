"""Golden transcripts and upstream-event builders for the translate tests."""
