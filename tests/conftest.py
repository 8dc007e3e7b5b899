import os

from hypothesis import settings

# Property tests: the default profile keeps the whole run within CI's budget; HYPOTHESIS_PROFILE=thorough digs deeper.
settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
