class PagesController < ApplicationController
  def about
    @count = Post.count
  end
end
