"""Workforce: staffing by Erlang C from the lines' history, and the hours the law counts."""
