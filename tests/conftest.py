import os

from hypothesis import settings

# Property tests: enough examples to find boundary bugs, bounded so the default run fits CI's budget.
settings.register_profile("ci", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
