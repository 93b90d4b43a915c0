from mailgate.api.cli import app

app(prog_name="mailgate")
