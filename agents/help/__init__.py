"""Help in a hard call: the agent's help key, a supervisor listening, whispering or joining (ARI
snoop and bridges), an abusive call flagged and ended courteously, and the cool-down after it."""
