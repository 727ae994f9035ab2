"""Practice calls: a simulated caller (a Chinese scenario) rung to an agent's own phone, recorded."""
