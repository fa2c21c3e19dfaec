"""Network service emulators: one module per protocol, one record per interaction.

Everything under this package runs inside the service containers an attacker
reaches, so it follows three rules:

- stdlib (and asyncssh for SSH) only, relative imports only: the image copies
  this directory under a neutral package name, with no framework around it;
- nothing here names the product or what the containers are for (a unit test
  greps the package for the words); banners, paths and process names look like
  the real daemons they stand in for;
- nothing an attacker sends is ever executed or written outside the process's
  memory: shells are command tables over an in-memory file system.

Protocol parsing and answers are pure functions (unit-tested without sockets);
`core` holds the sockets, limits and the event emitter.
"""
