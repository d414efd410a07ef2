"""Security: client JWTs, the key sets that verify them and the replay cache."""
