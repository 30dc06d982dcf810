# A dummy for the example only: set SECRET_KEY_BASE in a real app.
Rails.application.config.secret_key_base = ENV.fetch("SECRET_KEY_BASE") { "preheat-example-not-a-secret" }
