"""Identity and access control (users, tokens, scopes, policy, care teams)."""
