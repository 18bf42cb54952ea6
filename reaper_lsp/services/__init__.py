"""The services: one App shared by every editor session, and what each session does with it."""
