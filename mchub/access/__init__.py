"""People, projects and roles: who is signed in, which clusters they may see and act on, and
the hub-signed form in which a person travels to the flows that check it again."""
