"""The application shell: the ``crossroads`` command's dispatch and ``compose-local``.

It sits above everything it starts (the game, the terminal client, relays, load tests), so the
packages below never need to know about each other or about the command line as a whole.
"""
