"""Fake provider servers: each speaks one provider's wire protocol over real sockets on
127.0.0.1, answers as scripted by the test, and records what it received."""
