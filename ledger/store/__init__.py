"""The store layer: keys, Lua scripts, the policy's layout in Redis, connections, tokens."""
