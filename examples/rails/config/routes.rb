Rails.application.routes.draw do
  root "posts#index"
  resources :posts, only: %i[index show]
  get "/about", to: "pages#about"
  get "/old-posts", to: redirect("/posts", status: 302)
end
