class PostsController < ApplicationController
  def index
    @posts = Post.order(:id).limit(50).to_a
  end

  def show
    @post = Post.find(params[:id])
  end
end
