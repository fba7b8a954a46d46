"""Drills: exploit scenarios and benign traffic played against the reference venue on a devnet."""
