"""The results store (one JSON row per finished cell) and the tables made from it."""
