class ApplicationController < ActionController::Base
  # Which worker rendered a path for the first time, and how long it took:
  # the cold start preheat's warm-up exists to take off users. One line per
  # worker and path, so a test (or `heroku logs`) sees every worker warm.
  FIRST_RENDERS = Concurrent::Map.new

  around_action :note_first_render

  private

  def note_first_render
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    yield
  ensure
    if FIRST_RENDERS.put_if_absent(request.path, true).nil?
      ms = ((Process.clock_gettime(Process::CLOCK_MONOTONIC) - started) * 1000).round
      Rails.logger.warn("first render: worker #{Process.pid} #{request.path} #{ms}ms (#{response.status})")
    end
  end
end
