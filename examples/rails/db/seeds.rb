# The [[prime]] step: a few posts, once (safe to run on every release).
if Post.count.zero?
  20.times do |i|
    Post.create!(title: "Post #{i + 1}", body: "Body of post #{i + 1}. " * 20)
  end
end
puts "posts: #{Post.count}"
