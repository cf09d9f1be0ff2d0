"""Pet names ("brave-otter") that a new cluster gets until its owner names it.

Every name is a valid Magic Castle cluster_name: lowercase letters and one dash, far below
the 41-character limit.
"""

import random

ADJECTIVES: tuple[str, ...] = (
    "agile", "amber", "bold", "brave", "breezy", "bright", "calm", "clever", "cosmic", "crisp",
    "curious", "daring", "eager", "fancy", "fearless", "gentle", "glad", "golden", "happy",
    "humble", "jolly", "keen", "kind", "lively", "lucky", "mellow", "merry", "nimble", "noble",
    "patient", "plucky", "proud", "quick", "quiet", "rapid", "sharp", "shiny", "silent",
    "snowy", "steady", "sunny", "swift", "tidy", "vivid", "witty", "zesty",
)

ANIMALS: tuple[str, ...] = (
    "alpaca", "badger", "beaver", "bison", "caribou", "cougar", "coyote", "crane", "dolphin",
    "eagle", "falcon", "ferret", "finch", "fox", "gecko", "heron", "ibex", "jaguar", "koala",
    "lemur", "lynx", "marmot", "marten", "moose", "narwhal", "ocelot", "orca", "osprey",
    "otter", "owl", "panda", "pelican", "penguin", "puffin", "raccoon", "raven", "salmon",
    "seal", "sparrow", "squirrel", "tapir", "walrus", "weasel", "wolf", "wombat", "yak",
)


def pet_name(rng: random.Random | None = None) -> str:
    """A random "adjective-animal" name; pass `rng` for a repeatable one."""
    chooser = rng if rng is not None else random.Random()
    return f"{chooser.choice(ADJECTIVES)}-{chooser.choice(ANIMALS)}"
