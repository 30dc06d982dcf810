require_relative "boot"

# Only the frameworks this app uses: no mailer, jobs, cable, storage or assets.
require "rails"
require "active_record/railtie"
require "action_controller/railtie"
require "action_view/railtie"

module Blog
  class Application < Rails::Application
    config.load_defaults 6.1
    config.eager_load = true
    config.api_only = false
    # Only the app's own domain (Rails' HostAuthorization answers 403 to any
    # other Host), so the warm-up must send the Host the router sends.
    config.hosts << ENV.fetch("HEROKU_APP_DEFAULT_DOMAIN_NAME", "localhost")
  end
end
