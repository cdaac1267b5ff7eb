"""Server-side event streams: replay what is stored, then follow what is new.

- `frames`: a `repeated Event events = 1` response is the concatenation of tagged,
  length-prefixed events, so responses are built from stored bytes without parsing, once,
  and the same bytes go to every follower (the servicer yields them; the guard passes bytes
  through unserialized).
- `tail`: the recent committed chunks of one stream in memory (bounded in bytes), shared
  by all its followers, with one wake-up for all of them.
- `pages`: catch-up reads of the store shared between followers at the same point.
- `follow`: `replay_then_follow`, the one loop every watch of the node runs.
"""
