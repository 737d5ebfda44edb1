"""lucid's ground floor: error types, validation helpers, atomic file writes and constants.

Nothing here imports any other part of lucid, so every layer above can use it.
"""
