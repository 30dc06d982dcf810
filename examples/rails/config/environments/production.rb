Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
  config.consider_all_requests_local = false
  config.action_controller.perform_caching = true
  # Behind the Heroku router: https is only what X-Forwarded-Proto says.
  config.force_ssl = true
  config.ssl_options = { hsts: false }
  config.log_level = :warn
  config.logger = ActiveSupport::Logger.new($stdout)
  config.active_record.dump_schema_after_migration = false
end
