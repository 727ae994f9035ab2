"""In-memory stand-ins for what the tests would otherwise need a lab for.

- `tests.fakes.ari`: an Asterisk (channels, bridges, callee scripts) and its ARI clients.
- `tests.fakes.clock`: an asyncio loop whose clock jumps to the next timer when nothing else can run.
- `tests.fakes.prompts`: a prompt cache that needs no TTS engine and no sox.
"""
