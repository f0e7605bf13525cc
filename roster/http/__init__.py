"""The HTTP query endpoint and admin API every node serves (aiohttp)."""
